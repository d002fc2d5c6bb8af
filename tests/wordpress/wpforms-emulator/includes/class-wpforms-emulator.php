<?php
/**
 * The emulator's root object: its mode (Pro or Lite) and its parts.
 *
 * @package WPFormsEmulator
 */

defined( 'ABSPATH' ) || exit;

/**
 * Holds the parts and wires their hooks for the mode in force for this request.
 */
final class WPForms_Emulator {

	/**
	 * Option that selects the emulated edition: 'pro' (default) or 'lite'.
	 */
	const MODE_OPTION = 'wpforms_emulator_mode';

	/**
	 * Option: '1' makes uploads pass WordPress's content check as in WPForms (see README.md).
	 */
	const STRICT_FILE_TYPES_OPTION = 'wpforms_emulator_strict_file_types';

	/**
	 * The one instance.
	 *
	 * @var WPForms_Emulator|null
	 */
	private static $instance = null;

	/**
	 * Submission processing (WPForms_Process).
	 *
	 * @var WPForms_Emulator_Process
	 */
	public $process;

	/**
	 * Field types: validate and format handlers.
	 *
	 * @var WPForms_Emulator_Fields
	 */
	public $fields;

	/**
	 * The file-upload field's upload handling (Pro only).
	 *
	 * @var WPForms_Emulator_Uploads
	 */
	public $uploads;

	/**
	 * Entry storage (Pro only).
	 *
	 * @var WPForms_Emulator_Entries
	 */
	public $entries;

	/**
	 * The instance, made on first use.
	 */
	public static function instance(): self {
		if ( null === self::$instance ) {
			self::$instance = new self();
		}
		return self::$instance;
	}

	/**
	 * Build the parts.
	 */
	private function __construct() {
		$this->process = new WPForms_Emulator_Process();
		$this->fields  = new WPForms_Emulator_Fields();
		$this->uploads = new WPForms_Emulator_Uploads();
		$this->entries = new WPForms_Emulator_Entries();
	}

	/**
	 * 'pro' or 'lite', from the option (anything else counts as 'pro').
	 */
	public static function mode(): string {
		return 'lite' === get_option( self::MODE_OPTION, 'pro' ) ? 'lite' : 'pro';
	}

	/**
	 * Whether this request emulates WPForms Pro.
	 */
	public static function is_pro(): bool {
		return 'pro' === self::mode();
	}

	/**
	 * Whether the real WPForms is loaded (then the emulator must stay out of the way).
	 */
	public static function real_wpforms_present(): bool {
		return function_exists( 'wpforms' ) || class_exists( 'WPForms\WPForms', false );
	}

	/**
	 * Register every hook, like WPForms does while it loads.
	 */
	public function hooks(): void {
		add_action( 'init', array( 'WPForms_Emulator_Forms', 'register_post_type' ) );
		$this->process->hooks();
		$this->fields->hooks( self::is_pro() );
		if ( self::is_pro() ) {
			// Lite has no file-upload field and stores no entries.
			$this->uploads->hooks();
			$this->entries->hooks();
		}
	}
}
