"""The base of every leadchat management command (`LeadchatCommand`).

Two things Django's BaseCommand does differently from what a person typing a command expects:
- argparse takes any unambiguous prefix of an option, so `export_sessions --q refund` was read
  as `--qa-status refund` and filtered on a QA status instead of searching. Abbreviations are
  off: an option is spelled out or refused.
- a bad option prints the whole usage block (every Django option, a dozen lines) before the
  error. Here it is one line, as a CommandError prints, and a hint where the options are listed.
"""

from __future__ import annotations

import os
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandError, CommandParser


class LeadchatCommandParser(CommandParser):
    def error(self, message: str) -> NoReturn:
        if not self.called_from_command_line:
            # call_command() and the tests: an exception, as Django's parser raises.
            raise CommandError(f"Error: {message}")
        self.exit(2, f"CommandError: {message}\nSee: python {self.prog} --help\n")


class LeadchatCommand(BaseCommand):
    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        kwargs.setdefault("allow_abbrev", False)
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # BaseCommand builds a CommandParser itself; this subclass only changes error().
        parser.__class__ = LeadchatCommandParser
        parser.prog = f"{os.path.basename(prog_name)} {subcommand}"
        return parser
