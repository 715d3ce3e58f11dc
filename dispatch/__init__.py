"""The rules of the service and the state of the fleet: policies, dispatcher, store."""
