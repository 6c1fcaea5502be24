"""xrd-agent flows: the Prefect retrain flow and its nightly deployment.

Importing this package points Prefect's home at ``XRD_AGENT_HOME/prefect`` (unless the
user set ``PREFECT_HOME``) before any flow module imports prefect.
"""

from flows.prefect_env import configure_prefect_env

configure_prefect_env()
