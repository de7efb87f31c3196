-- The facility policy evaluated once per query, not once per row (see platform.scope_to_facility).
SELECT platform.scope_to_facility('health_mgmt.patients');
