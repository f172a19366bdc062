"""Serving: package a registered version as a bento, serve it, smoke-test it, read its inference log.

Modules: ``package`` (MLflow -> BentoML store -> bento), ``service`` (the BentoML service the bento
runs), ``contract`` (the pandera schema as a pydantic request model), ``inference_log`` (the log
writer and ``read_log``), ``smoke`` (checks of a running service over HTTP). Import the module you
need: importing this package loads neither BentoML nor MLflow.
"""
