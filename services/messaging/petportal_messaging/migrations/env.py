from petportal_runtime.migrations import run_env

from petportal_messaging.adapters.orm import Base

run_env(Base.metadata)
