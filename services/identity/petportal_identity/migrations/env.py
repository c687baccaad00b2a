from petportal_identity.adapters.orm import Base
from petportal_runtime.migrations import run_env
from petportal_runtime.tables import rate_limit_metadata

run_env(Base.metadata, rate_limit_metadata)
