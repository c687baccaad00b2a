pytest_plugins = ["petportal_runtime.testing"]
