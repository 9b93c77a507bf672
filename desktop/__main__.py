from dashfleet_desktop.cli import main

main()
