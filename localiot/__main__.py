from localiot.cli import main

main()
