#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ketamine_clinic.web.settings")
    from ketamine_clinic.web.env import prepare_data_dir

    prepare_data_dir()  # the data folder and its keys, made on first use
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
