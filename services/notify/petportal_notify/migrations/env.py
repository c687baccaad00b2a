from petportal_notify.adapters.orm import Base
from petportal_runtime.migrations import run_env

run_env(Base.metadata)
