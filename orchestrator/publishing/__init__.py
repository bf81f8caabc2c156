"""Publishing the orchestrator's events: state-machine commands become Kafka records
(``records``), written to the outbox with the state change, then sent after commit
(``outbox``); the service's relay sends what a writer could not."""
