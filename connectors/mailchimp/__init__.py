"""Mailchimp Marketing API v3: webhooks in, unsubscribes and merge fields out, over requests."""

from connectors.mailchimp.client import base_url_for, subscriber_hash
from connectors.mailchimp.connector import MailchimpConnector

__all__ = ["MailchimpConnector", "base_url_for", "subscriber_hash"]
