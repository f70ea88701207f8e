"""The text stage: caption parsing, run locally (`conceptfreq count`) or as the parser service."""
