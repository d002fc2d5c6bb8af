"""The fhir-r4 partner profile: a record as one FHIR transaction, documents as Binary +
DocumentReference (docs/fhir.md).

    resources   pure builders of the resources sent (no HTTP)
    outcome     an error answer (OperationOutcome or not) as sidecar.errors' PartnerErrors
    client      FhirClient, the sidecar.partner_profile.Partner that sends them
"""
