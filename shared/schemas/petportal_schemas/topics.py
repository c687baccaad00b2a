"""Kafka topics. One topic per producing service; keys are `clinic_id:client_id`."""

MESSAGING = "petportal.messaging.v1"
NOTIFY = "petportal.notify.v1"
SYNC = "petportal.sync.v1"
IDENTITY = "petportal.identity.v1"
PETS = "petportal.pets.v1"
# Every service that holds client data confirms an erasure here (the one topic with several producers).
ERASURE = "petportal.erasure.v1"
DEADLETTER = "petportal.deadletter.v1"

ALL = (MESSAGING, NOTIFY, SYNC, IDENTITY, PETS, ERASURE, DEADLETTER)
