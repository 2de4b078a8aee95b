from foedus.launch import main

main()
