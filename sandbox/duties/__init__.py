"""The platform's recurring duties (agreement lifecycle, notices, backups, audit checkpoints),
run by a timer inside ``sandbox serve`` or from cron with ``sandbox duties run``."""
