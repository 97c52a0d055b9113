"""Command-line shells: options in, one pydantic result out to a renderer. No decisions here."""
