-- Domain events of the imaging service, written in the same transaction as the change they describe and
-- relayed to the gateway's analytics by the imaging.relay_events task (common/events.py).
SELECT platform.create_outbox('imaging');
