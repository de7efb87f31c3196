from bench.consult.run import main

main()
