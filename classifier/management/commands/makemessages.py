from django.core.management.commands import makemessages


class Command(makemessages.Command):
    # classifier/core/galaxy10.py marks its texts with its own pgettext_noop: the module is shared
    # with ml/, which runs without Django. Taught to xgettext as Django's pgettext_lazy is.
    xgettext_options = [*makemessages.Command.xgettext_options, "--keyword=pgettext_noop:1c,2"]
