-- Domain events of the consult service, written in the same transaction as the change they describe and
-- relayed to the gateway's analytics by the consult.relay_events task (common/events.py).
SELECT platform.create_outbox('consult');
