from automl_trainer.cli import main

raise SystemExit(main())
