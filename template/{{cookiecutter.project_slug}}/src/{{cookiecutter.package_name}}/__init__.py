{%- from "escape.j2" import quoted -%}
"""{{ quoted(cookiecutter.project_name) }}: the data contract (schema.py) and the model (model.py) gitops-ml runs."""
