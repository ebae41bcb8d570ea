import os

from django.core.wsgi import get_wsgi_application

from ketamine_clinic.web.env import prepare_data_dir

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ketamine_clinic.web.settings")
prepare_data_dir()  # the data folder and its keys on first start (the settings write none)
application = get_wsgi_application()
