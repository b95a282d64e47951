"""The daily QA digest: an email to QA_NOTIFY_EMAILS, queued once a day by the delivery worker
(qa.digest.services) or by `manage.py send_qa_digest`."""
