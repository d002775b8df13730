"""What the core tells the apps above it. The core never imports them (the layers of
tests/unit/test_layers.py); an app that must act on a core event connects a receiver in
its `AppConfig.ready`."""

from django.dispatch import Signal

# Sent by the Salesforce sync task after a run that created accounts, with
# `account_ids`: the accounts that have no priority yet. prioritization evaluates them
# (prioritization/receivers.py).
accounts_unprioritised = Signal()
