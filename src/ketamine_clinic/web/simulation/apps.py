from django.apps import AppConfig

from ketamine_clinic.web.accounts.roles import Capability


class SimulationConfig(AppConfig):
    name = "ketamine_clinic.web.simulation"
    label = "simulation"
    verbose_name = "PK/PD predictions"
    nav = [("PK simulator", "simulator", Capability.RUN_SIMULATION)]
    patient_panels: list[str] = []
