"""{{ cookiecutter.project_name }}: the data contract (schema.py) and the model (model.py) gitops-ml runs."""
