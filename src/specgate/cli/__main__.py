from specgate.cli.main import main

raise SystemExit(main())
