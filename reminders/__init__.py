"""Plans and delivers the reminders of an isotretinoin course, exactly once."""

__version__ = "0.1.0"
