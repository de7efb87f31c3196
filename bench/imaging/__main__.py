from bench.imaging.run import main

main()
