from moovolt.cli import main

main()
