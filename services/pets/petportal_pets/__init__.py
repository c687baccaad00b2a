"""Pet Portal pets: the parent's pets and their signalment, projected from PatientUpserted."""
