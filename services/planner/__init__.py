"""The planner service: instruction + image analysis → English Flux prompt + sampler settings.

``python -m services.planner`` runs it (``PLANNER_*`` settings);
``services.planner.app.create_server`` builds it for tests and end-to-end runs.
"""
