-- Domain events of the pathology service, written in the same transaction as the change they describe and
-- relayed to the gateway's analytics by the pathology.relay_events task (common/events.py).
SELECT platform.create_outbox('pathology');
