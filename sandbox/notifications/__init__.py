"""Notices to the people who must act: deadlines coming or passed, and decisions made.

Each notice is stored in the platform (read in the app) and, when SMTP is
configured and the recipient has an address, sent by email. A notice has a
key (recipient, kind, object, due date), so running the job again never
notifies anyone twice.
"""
