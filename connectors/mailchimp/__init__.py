"""Mailchimp Marketing API v3 over requests: webhooks in; unsubscribes, merge fields,
permanent deletions out; members read back for access requests."""

from connectors.mailchimp.client import base_url_for, subscriber_hash
from connectors.mailchimp.connector import MailchimpConnector

__all__ = ["MailchimpConnector", "base_url_for", "subscriber_hash"]
