-- Domain events of the ecg service, written in the same transaction as the change they describe and
-- relayed to the gateway's analytics by the ecg.relay_events task (common/events.py).
SELECT platform.create_outbox('ecg');
