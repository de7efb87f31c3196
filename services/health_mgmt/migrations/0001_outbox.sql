-- Domain events of the health_mgmt service, written in the same transaction as the change they describe and
-- relayed to the gateway's analytics by the health_mgmt.relay_events task (common/events.py).
SELECT platform.create_outbox('health_mgmt');
