app_name = "prioritization"

urlpatterns: list = []
