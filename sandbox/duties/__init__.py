"""The platform's recurring duties (agreement lifecycle, notices, audit checkpoints),
run by a timer inside ``sandbox serve`` or from cron with ``sandbox duties run``."""
