"""The vendor connectors, one package per system (HubSpot, Salesforce, Mailchimp, partners and
processors, the person notifier), each turning core's ports into calls on its vendor's API,
with the rate limits they share in ``ratelimits``."""
