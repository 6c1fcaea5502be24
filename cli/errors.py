"""The error type the command line turns into one clear line and a non-zero exit."""


class UserError(Exception):
    """Bad input from the user (a file, an argument, a label): printed as one line, exit code 2."""
