import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "catalyst_portal.settings")

app = Celery("catalyst_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
