"""Pages: the helper replaces this."""
urlpatterns = []
