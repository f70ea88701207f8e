from conceptfreq.commands.serve import main_for

main_for("counter")
