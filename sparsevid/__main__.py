from sparsevid.cli import main
import sys
sys.exit(main())
