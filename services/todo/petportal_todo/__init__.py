"""Pet Portal todo: the parent's To-Do list and badge, projected from events into MongoDB."""
