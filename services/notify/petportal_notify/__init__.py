"""Pet Portal notify: SMS consent (carrier keywords and portal preferences) and SMS sending."""
