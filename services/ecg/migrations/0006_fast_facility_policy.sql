-- The facility policies evaluated once per query, not once per row (see platform.scope_to_facility).
SELECT platform.scope_to_facility('ecg.recordings');
SELECT platform.scope_to_facility('ecg.analyses');
SELECT platform.scope_to_facility('ecg.alerts');
SELECT platform.scope_to_facility('ecg.reports');
SELECT platform.scope_to_facility('ecg.report_addenda');
SELECT platform.scope_to_facility('ecg.duty_shifts');
SELECT platform.scope_to_facility('ecg.reading_centres');
