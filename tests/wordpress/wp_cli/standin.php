<?php
/**
 * A minimal stand-in for WP-CLI's API, for tests only (Debian 12 packages no wp-cli).
 *
 * Loaded with php -d auto_prepend_file before WordPress, so the plugin sees WP_CLI
 * defined and registers its command as under the real WP-CLI. It keeps the parts
 * the plugin uses with WP-CLI's behaviour: add_command() records the class,
 * line()/log() print to stdout, success() prints "Success: ...", error() prints
 * "Error: ..." on stderr and exits 1. What it cannot stand in for (argument
 * parsing from the docblocks, --user= handling, global flags) is done by the real
 * wp binary in test_ops_cli.py::test_the_real_wp_cli_runs_the_command, skipped
 * where no `wp` is on PATH. Here the snippet runner logs the user in (as --user=
 * does) and standin_run() calls the subcommand with positional and --key=value
 * arguments.
 */

define( 'WP_CLI', true );

class WP_CLI {
	/** @var array<string, string> */
	public static $commands = array();

	public static function add_command( $name, $callable ) {
		self::$commands[ $name ] = $callable;
		return true;
	}

	public static function line( $message = '' ) {
		echo $message, "\n";
	}

	public static function log( $message ) {
		self::line( $message );
	}

	public static function success( $message ) {
		self::line( 'Success: ' . $message );
	}

	public static function warning( $message ) {
		fwrite( STDERR, 'Warning: ' . $message . "\n" );
	}

	public static function error( $message, $exit = true ) {
		fwrite( STDERR, 'Error: ' . $message . "\n" );
		if ( $exit ) {
			exit( 1 );
		}
	}

	/** Run `<command> <subcommand> [args] [--key=value]` from an argument list. */
	public static function standin_run( array $argv ) {
		$name = array_shift( $argv );
		$sub  = array_shift( $argv );
		if ( ! isset( self::$commands[ $name ] ) ) {
			self::error( "'$name' is not a registered wp command." );
		}
		$args  = array();
		$assoc = array();
		foreach ( $argv as $arg ) {
			if ( preg_match( '/^--([^=]+)=(.*)$/s', $arg, $m ) ) {
				$assoc[ $m[1] ] = $m[2];
			} else {
				$args[] = $arg;
			}
		}
		$class = self::$commands[ $name ];
		$instance = new $class();
		if ( ! is_callable( array( $instance, $sub ) ) ) {
			self::error( "'$sub' is not a registered subcommand of '$name'." );
		}
		$instance->$sub( $args, $assoc );
	}
}
